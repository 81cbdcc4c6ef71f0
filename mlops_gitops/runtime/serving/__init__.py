"""The endpoint host: one process per workspace serving every online endpoint on one port."""
