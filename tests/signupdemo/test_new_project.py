"""`manage.py new_project`: a copy of this project under a new name, that works as it is."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from signupdemo.management.commands.new_project import MAX_INDEX_NAME, renamer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("my-shop", "not a valid Python identifier"),
        ("class", "not a valid Python identifier"),
        ("2shop", "not a valid Python identifier"),
        ("MyShop", "Python packages are lowercase"),
        ("signupdemo", "this project's own name"),
        ("jobs", "shadow this project's own jobs/"),
        ("templates", "shadow this project's own templates/"),
        ("json", "shadow the module 'json'"),
        ("django", "shadow the module 'django'"),
    ],
)
def test_refuses_a_name_that_cannot_work(tmp_path, name, reason):
    with pytest.raises(CommandError, match=re.escape(reason)):
        call_command("new_project", str(tmp_path / "copy"), name=name)
    assert not (tmp_path / "copy").exists()


def test_refuses_a_destination_in_use_or_inside_this_project(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CommandError, match="exists and is not empty"):
        call_command("new_project", str(tmp_path), name="myshop")
    with pytest.raises(CommandError, match="is inside this project"):
        call_command("new_project", str(ROOT / "myshop"), name="myshop")
    assert not (ROOT / "myshop").exists()


def test_index_names_fit_djangos_limit_whatever_the_name():
    rename = renamer("corner_bookshop_online", "Corner Books")
    renamed = rename('models.Index(fields=["window_start"], name="signupdemo_ratelimit_win_idx")')
    [index_name] = re.findall(r'name="(\w+)"', renamed)
    assert index_name == "corner_books_ratelimit_win_idx"
    assert len(index_name) <= MAX_INDEX_NAME
    assert rename("signupdemo.settings") == "corner_bookshop_online.settings"
    assert rename("SignupDemoConfig") == "CornerBookshopOnlineConfig"
    # One pass: a new name that contains the old one is not renamed again.
    assert renamer("my_signupdemo", "Mine")("signupdemo.urls") == "my_signupdemo.urls"


def run(args, cwd, timeout):
    # The copy reads its own settings: nothing of this test run's, but the database.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "DJANGO_")) and k not in {"SITE_URL"}
    }
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_the_copy_is_renamed_throughout_and_its_checks_and_tests_pass(tmp_path):
    copy = tmp_path / "bookshop"
    name = "bookshop"
    made = run(
        ["manage.py", "new_project", str(copy), "--name", name, "--title", "Corner Books"],
        cwd=ROOT,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "ruff still reports" not in made.stdout

    assert (copy / name / "settings.py").exists()
    assert (copy / "tests" / name / "conftest.py").exists()
    for left_out in (".git", ".venv", "db.sqlite3", "staticfiles", "test-artifacts"):
        assert not (copy / left_out).exists(), left_out
    leftovers = []
    for path in copy.rglob("*"):
        if "signupdemo" in path.name:
            leftovers.append(str(path))
        elif path.is_file() and path.suffix != ".png":
            text = path.read_text(encoding="utf-8")
            leftovers += [f"{path}: {m}" for m in re.findall(r"(?i)signup.?demo\w*", text)]
    assert leftovers == []

    procfile = (copy / "Procfile").read_text()
    assert f"web: gunicorn {name}.wsgi --config gunicorn.conf.py" in procfile
    assert "Corner Books <noreply@example.com>" in (copy / name / "settings.py").read_text()
    assert "BookshopConfig" in (copy / name / "apps.py").read_text()
    assert "Corner Books</a>" in (copy / "templates" / "base.html").read_text()

    # Lint-clean as .ci/run wants it: imports re-sorted for the new name.
    ruff = Path(sys.executable).with_name("ruff")
    for lint in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run([ruff, *lint], cwd=copy, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr

    check = run(["manage.py", "check"], cwd=copy, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout
    # The fault suite runs on its own (pytest -m faults); the copy's jobs/ is
    # this one's, which the fault suite here already covers.
    tests = run(
        ["-m", "pytest", "-m", "not slow and not faults", "-q", "-p", "no:cacheprovider"],
        cwd=copy,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout
