# tests of lostcard_recognition
