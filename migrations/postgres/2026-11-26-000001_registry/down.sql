DROP TABLE hazards;
DROP TABLE checklist_templates;
DROP TABLE equipment;
DROP TABLE units;
DROP TABLE codes;
