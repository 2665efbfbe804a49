"""GPU ops: one file per op, each with its Triton kernel, the launch wrapper, and the reference
(<op>_ref) it is tested against. Importing this package does not import triton; the files do."""
