"""The C part of the synchronous stream watch (optional: without a compiler the package
installs and the Python watch does the same work, slower on the caller's thread)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "producers.integrations._anthropic_fast",
            ["producers/integrations/_anthropic_fast.c"],
            optional=True,
        )
    ]
)
