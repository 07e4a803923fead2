"""History services, one module per job: `plays` (the one way plays are stored), `sync`, `imports`."""
