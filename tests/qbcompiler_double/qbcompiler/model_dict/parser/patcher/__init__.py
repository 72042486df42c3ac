"""Part of the qbcompiler test double: the import path of load_for_part."""
