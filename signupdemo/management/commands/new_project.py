"""Make a new project from this one: a copy with the package and every reference renamed.

    python manage.py new_project ../myshop --name myshop --title "My Shop"

Copies what a project needs (not .git, the virtual environment, databases,
collected static files or caches), renames this package (its directory, the
tests' directory, imports, dotted paths in settings, the Procfile, app.json,
migrations, table and index names) and the brand text (page titles, emails,
DEFAULT_FROM_EMAIL). The result passes `manage.py check` and `make test`.
It works from a copy too: the package it renames is whichever it lives in.
"""

import importlib.util
import keyword
import re
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

#: This package: what the copy renames (``signupdemo`` here, the new name in a copy).
SOURCE = __name__.split(".")[0]
#: Its names for people (page titles, emails, the From address, app.json); a
#: copy gets its title in all of them, so these become that title there.
BRANDS = ("Signup demo", "Signup Demo", "signup demo")
#: The same in host names (`heroku create my-signup-demo`).
BRAND_SLUG = "signup-demo"
#: The prefix of its AppConfig class.
CAMEL = "SignupDemo"

#: What a new project does not get: history, local state, generated files.
NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "db.sqlite3*",
    "staticfiles",
    "test-artifacts",
    "__pycache__",
    "*.pyc",
    ".*_cache",
    "*.egg-info",
)

#: Django refuses index names longer than this (models.E034).
MAX_INDEX_NAME = 30


def camel_case(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def refusal(name: str, root: Path) -> str | None:
    """Why ``name`` cannot be the new package's name, or None if it can."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return f"{name!r} is not a valid Python identifier: use letters, digits and underscores."
    if name != name.lower():
        return f"{name!r} has capitals; Python packages are lowercase: try {name.lower()!r}."
    if name == SOURCE:
        return f"{name!r} is this project's own name."
    # The new package sits beside jobs/, tests/, templates/ ... and before
    # every installed package on sys.path: it must hide none of them.
    if (root / name).exists() or (root / f"{name}.py").exists():
        return f"{name!r} would shadow this project's own {name}/."
    if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
        return f"{name!r} would shadow the module {name!r} that Python already imports."
    return None


def renamer(name: str, title: str):
    """A function that rewrites one text file's contents for the new project.

    One pass over the text, so that nothing is renamed twice (the new name
    may contain the old one, as ``corner_signupdemo`` does).
    """
    # Later entries win where two are the same text (in a copy, the slug is
    # the package name, which must stay the package name).
    renames = {BRAND_SLUG: name.replace("_", "-")}
    renames.update((brand, title) for brand in BRANDS)
    renames.update({CAMEL: camel_case(name), SOURCE: name})
    literals = "|".join(re.escape(old) for old in sorted(renames, key=len, reverse=True))
    # Index and constraint names first: a long new name must still fit
    # Django's limit, and the model and its migration must agree.
    pattern = re.compile(rf"\b{SOURCE}_(?P<index>\w+?_(?:idx|unique))\b|{literals}")

    def replace(match: re.Match) -> str:
        suffix = match.group("index")
        if suffix:
            return f"{name[: MAX_INDEX_NAME - len(suffix) - 1]}_{suffix}"
        return renames[match.group()]

    return lambda text: pattern.sub(replace, text)


class Command(BaseCommand):
    help = "Make a new project from this one, with the package and every reference renamed."

    def add_arguments(self, parser):
        parser.add_argument("destination", help="A new (or empty) directory, outside this one.")
        parser.add_argument(
            "--name", required=True, help="The new package's name, e.g. myshop: a Python name."
        )
        parser.add_argument(
            "--title",
            help="The name people see (page titles, emails); default: the name, capitalised.",
        )

    def handle(self, *args, destination, name, title=None, **options):
        root = Path(settings.BASE_DIR).resolve()
        destination = Path(destination).expanduser().resolve()
        title = title or name.replace("_", " ").capitalize()
        reason = refusal(name, root)
        if reason:
            raise CommandError(reason)
        if destination == root or root in destination.parents:
            raise CommandError(f"{destination} is inside this project; choose a directory outside.")
        if destination.exists() and any(destination.iterdir()):
            raise CommandError(f"{destination} exists and is not empty.")

        shutil.copytree(root, destination, ignore=NOT_COPIED, dirs_exist_ok=True)
        rename = renamer(name, title)
        # Deepest first, so a directory is renamed after what is inside it.
        for path in sorted(destination.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_file():
                self._rewrite(path, rename)
            if SOURCE in path.name:
                path.rename(path.with_name(path.name.replace(SOURCE, name)))

        self._tidy(destination)
        self.stdout.write(
            f"Created {destination} with the package {name!r} ({title}). Next:\n"
            f"  cd {destination}\n"
            "  git init && git add -A && git commit -m 'New project from the template'\n"
            "  make test\n"
            "Then put your repository's URL in app.json's repository and the README's "
            "Deploy button, and replace the signup app's models, views and templates."
        )

    def _tidy(self, destination: Path) -> None:
        """Sort imports and format again: the new name sorts and measures differently."""
        ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
        if ruff is None:
            self.stdout.write(
                "ruff is not installed here: run `ruff check --fix . && ruff format .` in the copy."
            )
            return
        # --no-cache: the copy gets no .ruff_cache of ours.
        quiet = {"cwd": destination, "capture_output": True, "text": True, "check": False}
        subprocess.run([ruff, "check", "--no-cache", "--fix", "--select", "I", "."], **quiet)
        subprocess.run([ruff, "format", "--no-cache", "."], **quiet)
        concise = ["--output-format", "concise"]
        remaining = subprocess.run([ruff, "check", "--no-cache", *concise, "."], **quiet)
        if remaining.returncode:
            # Only lines the new name made too long are left: strings ruff cannot split.
            self.stdout.write(f"ruff still reports, to fix by hand:\n{remaining.stdout}")

    @staticmethod
    def _rewrite(path: Path, rename) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return  # a picture or other binary file: copied as it is
        renamed = rename(text)
        if renamed != text:
            path.write_text(renamed, encoding="utf-8")
