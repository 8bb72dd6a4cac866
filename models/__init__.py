"""linkcast.models: features, training, evaluation, registry and fast inference.

Knows nothing of Kafka or HTTP. The classifier and the LSTM forecaster arrive
with the models issue; until then the stream publishes windows and link state only.
"""
