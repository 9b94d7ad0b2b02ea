# tests of lostcard_gateway
