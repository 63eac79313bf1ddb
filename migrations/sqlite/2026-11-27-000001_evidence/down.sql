DROP TABLE evidence;
DROP TABLE blobs;
DROP TABLE uploads;
