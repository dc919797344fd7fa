"""Floor 0, what every floor stands on: atomic files and checked reads (io), job logs and progress (logs),
threads and devices (compute), GPU slots (gpu), the config's checks (config) and its generated reference (configdoc)."""
