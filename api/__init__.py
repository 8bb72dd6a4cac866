"""linkcast.api: the HTTP surface over a materialized view of the stream's output topics."""
