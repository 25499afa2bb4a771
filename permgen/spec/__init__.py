"""Role specs: loading (YAML with positions), the schema, checks, templates, compiling, output files."""
