"""Short-lived credentials: minting through STS, the token service, running a command with them."""
