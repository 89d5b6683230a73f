"""What the service keeps in its database beside the data tables: jobs and their parts, leases,
rejections, batches, table gates, dead-letter claims; and the reports' reads."""
