"""Read-side queries and read models: consultation (what the patient sees), case (what a clinician reads),
annotations (the reviewed mentions), audit, prompt_templates, training (the reviewed-documents export).
Selectors write nothing and never import a service."""
