"""Annual transparency reports and the public disclosures."""
