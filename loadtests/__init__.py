"""Load and fault runs against the real stack: two gunicorn instances sharing PostgreSQL.

``python -m loadtests.run`` measures (docs/loadtests.md); ``python -m loadtests.faults``
kills workers, servers and the database mid-load and checks that no acknowledged answer
is lost.
"""
