"""Plumbing every ARM app builds on, and nothing about tenants: the API's errors, parsing, rendering,
pagination and schema; strict serializer and filter fields; the UI's pagination and form helpers;
command exit codes and progress; the recorded-model base the audit trail discovers; database helpers and
triggers; process start-up and logging. A library, not an installed app (tenancy is the app with the label
``arm``); it imports no ARM app."""
