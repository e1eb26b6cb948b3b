"""A small CRM world in the in-process local CRM, and a logged-in connection to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from crm.salesforce import CrmSettings, SalesforceConnection, connect
from local_crm.db import CrmStore
from local_crm.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    LocalCrmServer,
    start_in_process,
)


@dataclass
class World:
    store: CrmStore
    server: LocalCrmServer
    conn: SalesforceConnection
    warehouse: Path
    users: list[str]
    accounts: list[str]
    contacts: list[str]

    @staticmethod
    def activity(account_id: str, day: date) -> dict:
        return activity(account_id, day)


def seed_world(store: CrmStore, n_accounts: int = 120) -> tuple[list[str], list[str], list[str]]:
    """Every object populated; some activities older than a year (archived)."""
    today = store.clock.today()
    users = store.insert(
        "User",
        [
            {
                "Username": f"rep{i}@books.local",
                "Name": f"Rep {i}",
                "Email": f"rep{i}@books.local",
                "IsActive": True,
                "Book_Role__c": "SDR",
                "Book_Segments__c": "smb",
                "Ramp_Start_Date__c": "2024-06-01",
            }
            for i in range(4)
        ],
    )
    accounts = store.insert(
        "Account",
        [
            {
                "Name": f"Acme {i}",
                "Website": f"https://acme{i}.com",
                "Industry": "Software",
                "NumberOfEmployees": 10 + i,
                "AnnualRevenue": 1000.5 * i,
                "OwnerId": users[i % len(users)],
                "Book_Status__c": "ready",
                "Last_Touch_Date__c": (today - timedelta(days=i)).isoformat(),
                "External_Fit_Score__c": i / 2,
            }
            for i in range(n_accounts)
        ],
    )
    contacts = store.insert(
        "Contact",
        [
            {
                "AccountId": accounts[i],
                "FirstName": "Ann",
                "LastName": f"Lee{i}",
                "Email": f"ann{i}@acme{i}.com",
                "Is_Key_Contact__c": i % 3 == 0,
            }
            for i in range(40)
        ],
        actor_id=users[0],
    )
    store.insert(
        "Lead",
        [
            {"LastName": f"L{i}", "Company": f"Acme {i}", "Email": f"x@acme{i}.com"}
            for i in range(15)
        ],
        actor_id=users[0],
    )
    store.insert(
        "Opportunity",
        [
            {
                "AccountId": accounts[i],
                "Name": f"Opp {i}",
                "StageName": "Prospecting",
                "CloseDate": (today + timedelta(days=30)).isoformat(),
                "Amount": 5000,
            }
            for i in range(10)
        ],
        actor_id=users[0],
    )
    store.insert(
        "Task", [activity(accounts[i], today - timedelta(days=i * 7)) for i in range(80)], users[0]
    )
    store.insert(
        "Event",
        [activity(accounts[i], today - timedelta(days=400 + i)) for i in range(12)],
        users[0],
    )
    store.insert(
        "Signal__c",
        [
            {
                "Account__c": accounts[i],
                "Signal_Type__c": "funding",
                "Signal_Date__c": today.isoformat(),
                "Score__c": 80.0,
            }
            for i in range(8)
        ],
        actor_id=users[0],
    )
    return users, accounts, contacts


def activity(account_id: str, day: date) -> dict:
    return {
        "WhatId": account_id,
        "Subject": "Call",
        "Type": "Call",
        "ActivityDate": day.isoformat(),
        "Direction__c": "Outbound",
        "Source__c": "Manual",
    }


def local_connection(server: LocalCrmServer, **kwargs) -> SalesforceConnection:
    settings = CrmSettings(
        kind="local",
        base_url=server.url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
    )
    return connect(settings, **kwargs)


@pytest.fixture
def world(tmp_path: Path):
    db = tmp_path / "crm.sqlite"
    store = CrmStore(db)
    users, accounts, contacts = seed_world(store)
    # a small page size so REST paging is exercised
    server = start_in_process(db, page_size=50)
    try:
        conn = local_connection(server)
        yield World(
            store, server, conn, tmp_path / "wh" / "warehouse.duckdb", users, accounts, contacts
        )
    finally:
        server.stop()
