"""linkcast.deploy: the command line, the local Kafka launcher, the demo, and deployment files."""
