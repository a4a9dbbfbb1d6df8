"""scaling-harness: sweep tiny transformers, log to W&B, fit scaling laws, and say whether loss
scales smoothly with compute. Data flows one way: config -> plan -> runs -> results -> fit -> report."""
