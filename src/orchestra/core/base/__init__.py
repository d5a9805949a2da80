"""What every layer of the core shares: errors, file locks and atomic writes, canonical JSON,
process-group signals, output lines and fault points. It imports nothing else of orchestra."""
