"""Importing this module registers every gin configurable of the package.

This project's gin files start with ``import ddsp_models.training.configurables``, so plain
gin (``gin.parse_config_file``, with the repository's ``gin/`` folder among gin's search
paths for their ``include`` lines) parses them as well as `config.parse_gin` does. Configs
written for the original DDSP (``import ddsp``) need `config.parse_gin`, which maps its
imports and names onto this package.
"""
from ddsp_models.training.config import import_all

REGISTERED_MODULES = import_all()
