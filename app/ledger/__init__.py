"""The open ledger: an RFC 6962 Merkle-tree log of every gift and payout, with signed checkpoints.

Pure parts: `merkle` (hashing, proofs, verifiers), `note` (C2SP signed notes and tlog checkpoints),
`keys` (the Ed25519 signing key file).
"""
