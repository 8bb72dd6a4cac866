"""The traffic classes the classifier predicts, in the order of its outputs.

The same names as ``streams.schemas.TrafficClass`` (a test keeps the two
equal); ``models`` imports nothing of ours, so the list lives here too.
"""

CLASSES: tuple[str, ...] = ("web", "streaming", "bulk", "interactive", "dns", "attack", "other")
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
