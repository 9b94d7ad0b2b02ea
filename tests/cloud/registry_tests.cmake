# tests of lostcard_registry
