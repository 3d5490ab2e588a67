"""A local Microsoft 365 for mail: Graph endpoints, sign-in endpoints, faults. Imports nothing of Mailroom."""
