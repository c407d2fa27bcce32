"""Production's static files storage: whitenoise's compressed, hashed names, without
rewriting source map comments (the vendored Bootstrap names .map files it does not ship,
which would fail collectstatic; only a browser's developer tools ever ask for them)."""
from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    patterns = tuple(
        (glob, tuple(p for p in rules if "sourceMappingURL" not in str(p)))
        for glob, rules in ManifestStaticFilesStorage.patterns
    )
