"""linkcast.producers: turning simulations (and, later, captures and flow CSVs) into FlowRecords on Kafka."""
