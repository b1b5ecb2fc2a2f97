"""The customer's audience pages, one module per resource; the contacts' own pages (no
login) in `public`, the inbox of their requests in `requests`."""
