"""Annual transparency reports, partner confirmation of records, and the public disclosures."""
