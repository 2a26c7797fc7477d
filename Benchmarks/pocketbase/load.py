"""Loads Strive's seed shape into a PocketBase data directory (pocketbase stopped), straight into SQLite:
ORGS organizations × 5 members (member@acme.example is a member of the first), 5 projects of 20 tasks
each per organization. Prints the ids the benchmark needs: the organization, the project the lists read
and the one creates go to."""
import random
import sqlite3
import string
import sys

import bcrypt

data_db, organizations, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(7)
alphabet = string.ascii_lowercase + string.digits


def new_id():
    return "".join(rng.choice(alphabet) for _ in range(15))


db = sqlite3.connect(data_db)
hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
users, orgs, projects, tasks = [], [], [], []
first_org = first_project = second_project = None
for o in range(organizations):
    org = new_id()
    member_ids = []
    for m in range(5):
        user = new_id()
        email = "member@acme.example" if (o, m) == (0, 0) else f"user{o}-{m}@bench.example"
        users.append((user, email, hashed, new_id() + new_id(), True))
        member_ids.append(user)
    orgs.append((org, f"Org {o}", "[" + ",".join(f'"{u}"' for u in member_ids) + "]"))
    for p in range(5):
        project = new_id()
        projects.append((project, org, f"Project {p}"))
        if first_project is None:
            first_org, first_project = org, project
        elif second_project is None:
            second_project = project
        for t in range(20):
            tasks.append((new_id(), org, project, f"Task {t}", t + 1))
db.executemany("insert into users (id, email, password, tokenKey, verified, emailVisibility, name, avatar) values (?, ?, ?, ?, ?, 0, '', '')", users)
db.executemany("insert into orgs (id, name, members) values (?, ?, ?)", orgs)
db.executemany("insert into projects (id, org, name) values (?, ?, ?)", projects)
db.executemany("insert into tasks (id, org, project, title, position) values (?, ?, ?, ?, ?)", tasks)
db.commit()
db.execute("analyze")
print(first_org, first_project, second_project)
