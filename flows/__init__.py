"""The jobs: campaign launch with approval, GDPR forget and audit, bulk import, emergency stop,
export and archive. Each flow module is also a deployment entry point (see prefect.yaml)."""
