"""One way to make things gin-configurable, Keras 3 layers included.

`gin.configurable` wraps a class's ``__init__``; Keras 3 then inspects that wrapper's
signature (``*args, **kwargs``) while building the layer's config and fails with an
``IndexError``. `register` re-attaches the original signature after gin has wrapped it.

Names: ``register('synths')`` files a class under ``ddsp_models.synths.<Name>``; gin
matches any dotted suffix, so configs written for the original DDSP (``synths.Harmonic``,
``Harmonic``) bind unchanged.
"""
import inspect

import gin

PACKAGE = "ddsp_models"


def register(module: str, name: str | None = None, **gin_kwargs):
    """Decorator: registers a class or function with gin under ``ddsp_models.<module>``.

    Args:
      module: short module name the original DDSP configs use, e.g. ``'synths'``,
        ``'models'``, ``'core'``.
      name: configurable name; defaults to the object's ``__name__``.
      **gin_kwargs: passed to ``gin.configurable`` (e.g. ``denylist``).
    """

    def decorate(obj):
        full_module = f"{PACKAGE}.{module}" if module else PACKAGE
        if inspect.isclass(obj):
            original_signature = inspect.signature(obj.__init__)
            configured = gin.configurable(name or obj.__name__, module=full_module, **gin_kwargs)(obj)
            configured.__init__.__signature__ = original_signature
            return configured
        return gin.configurable(name or obj.__name__, module=full_module, **gin_kwargs)(obj)

    return decorate
