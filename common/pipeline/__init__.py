"""From bytes to valid rows: cut an upload into parts, a part into blocks of whole lines, parse
and validate each block with vectorised kernels, JSON batches alike."""
