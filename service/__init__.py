"""pumpcds: CDS Hooks 2.0 service for coding implanted drug-pump visits."""

__version__ = "0.1.0"
