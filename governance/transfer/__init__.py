"""Moving records in and out in bulk: CSV import (preview, then commit) and CSV/XLSX exports."""
