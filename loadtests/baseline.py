"""The bare baseline: a minimal Flask endpoint doing one insert through the same driver.

Served by the same gunicorn settings as the product, it answers every path and method
with one committed INSERT on a connection of its own thread (psycopg 3, no ORM, no pool,
no session, no checks), so a load run against it shows what this machine, gunicorn,
Flask and PostgreSQL allow before the product does any work of its own.
"""
from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, jsonify

TABLE = "CREATE TABLE IF NOT EXISTS baseline_writes (id bigserial PRIMARY KEY, path text, at timestamptz DEFAULT now())"


def create_app() -> Flask:
    url = os.environ["CBT_DATABASE_URL"]
    local = threading.local()
    app = Flask(__name__)

    def connection() -> psycopg.Connection:
        if getattr(local, "connection", None) is None or local.connection.closed:
            local.connection = psycopg.connect(url)
        return local.connection

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT"])
    def write(path: str):
        db = connection()
        db.execute("INSERT INTO baseline_writes (path) VALUES (%s)", (path,))
        db.commit()
        return jsonify(saved=True)

    return app


def create_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(TABLE)
