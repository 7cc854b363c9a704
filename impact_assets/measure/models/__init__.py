"""The six measurement models. Importing this package registers them in ``MODEL_REGISTRY``."""
