"""linkcast.streams: the Kafka contract (topics, record schemas, settings) and the Faust worker."""
