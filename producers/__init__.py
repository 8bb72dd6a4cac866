"""linkcast.producers: simulations (later captures and flow CSVs) as FlowRecords on Kafka."""
