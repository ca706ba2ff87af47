"""The logic, grouped by workflow (data, capture, verify, check, batch, share, capsules); never prints, prompts or exits."""
