"""The sync engine: plan, fetch, convert and store a customer's Outlook mail (HTML to text in `text.py`)."""
