"""The public column (no key): /disclosures, each disclosure's page, Atom feeds and the /catalogue."""
