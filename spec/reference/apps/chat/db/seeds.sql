INSERT INTO users (id, name) VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cy "the third" <Ω>');
INSERT INTO rooms (id, name) VALUES (1, 'Lobby'), (2, 'Private');
INSERT INTO memberships (room_id, user_id) VALUES (1, 1), (1, 2), (2, 2), (1, 3);
