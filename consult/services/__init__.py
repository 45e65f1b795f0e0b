"""Write-side business logic, one module per subject: consultations, messages (accept and process), triage
(the interview's turn), review (clinician actions), prompt_templates, audit. Services may read through
selectors; selectors never call services."""
