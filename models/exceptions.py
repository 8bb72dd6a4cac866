"""What can go wrong with models: one root, specific subclasses, messages that say what to do."""


class ModelError(Exception):
    """Root of the models package's errors."""


class SchemaMismatchError(ModelError):
    """A model was trained on other features than the code computes now."""


class RegistryError(ModelError):
    """A model version is missing, damaged or cannot become current."""


class IntegrityError(RegistryError):
    """An artifact's bytes are not the ones recorded when it was trained."""


class DataError(ModelError):
    """Training or evaluation data that cannot be used, with the reason."""
