//! Diesel table definitions, identical on both engines (portable column types only).

diesel::table! {
    sync_clock (id) {
        id -> Integer,
        seq -> BigInt,
        writing -> Bool,
    }
}

diesel::table! {
    server_meta (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        display_name -> Text,
        role -> Text,
        region_code -> Text,
        unit_id -> Nullable<Text>,
        credential_no -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    user_credentials (user_id) {
        user_id -> Text,
        password_hash -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    devices (id) {
        id -> Text,
        user_id -> Text,
        device_id -> Text,
        name -> Text,
        last_mutation_seq -> BigInt,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    device_sessions (id) {
        id -> Text,
        device_pk -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        created_at -> Timestamp,
        spent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Integer,
        window_started_at -> Timestamp,
        blocked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    codes (id) {
        id -> Text,
        kind -> Text,
        code -> Text,
        parent_code -> Nullable<Text>,
        label_zh -> Text,
        label_en -> Text,
        sort_order -> Integer,
        attrs -> Text,
        version -> BigInt,
    }
}

diesel::table! {
    units (id) {
        id -> Text,
        uscc -> Text,
        name -> Text,
        address -> Text,
        region_code -> Text,
        place_type -> Text,
        public_gathering -> Bool,
        contact_name -> Text,
        contact_phone -> Text,
        blacklisted_from -> Nullable<Date>,
        blacklisted_until -> Nullable<Date>,
        last_accident_on -> Nullable<Date>,
        last_complaint_on -> Nullable<Date>,
        open_hazards -> Integer,
        overdue_hazards -> Integer,
        risk_flags -> Text,
        risk_score -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    equipment (id) {
        id -> Text,
        registration_code -> Text,
        unit_id -> Text,
        region_code -> Text,
        category_code -> Text,
        reg_cert_no -> Text,
        reg_status -> Text,
        commissioned_on -> Nullable<Date>,
        last_inspection_on -> Nullable<Date>,
        next_inspection_due -> Nullable<Date>,
        inspection_conclusion -> Text,
        location -> Text,
        brake_type -> Text,
        fault_count_12m -> Integer,
        hazchem -> Bool,
        risk_flags -> Text,
        risk_score -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    checklist_templates (id) {
        id -> Text,
        code -> Text,
        scope -> Text,
        category_code -> Nullable<Text>,
        title_zh -> Text,
        title_en -> Text,
        items -> Text,
        active -> Bool,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    hazards (id) {
        id -> Text,
        unit_id -> Text,
        equipment_id -> Nullable<Text>,
        region_code -> Text,
        inspection_id -> Nullable<Text>,
        item_code -> Nullable<Text>,
        description -> Text,
        level -> Text,
        state -> Text,
        fixed_on_site -> Bool,
        deadline -> Nullable<Timestamp>,
        notice_no -> Nullable<Text>,
        reported_by -> Text,
        reported_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        field_versions -> Text,
        proposed_level -> Nullable<Text>,
        commitments -> Nullable<Text>,
        rectification_note -> Nullable<Text>,
        equipment_stopped -> Bool,
        classified_by -> Nullable<Text>,
        classified_at -> Nullable<Timestamp>,
        verified_by -> Nullable<Text>,
        verified_at -> Nullable<Timestamp>,
        closed_by -> Nullable<Text>,
        reopen_count -> Integer,
        campaign_id -> Nullable<Text>,
        escalated_at -> Nullable<Timestamp>,
        rectification_submitted_by -> Nullable<Text>,
    }
}

diesel::table! {
    inspections (id) {
        id -> Text,
        assignment_id -> Text,
        unit_id -> Text,
        region_code -> Text,
        team -> Text,
        status -> Text,
        started_by -> Text,
        started_at -> Timestamp,
        lat -> Nullable<Double>,
        lng -> Nullable<Double>,
        results -> Text,
        finished_at -> Nullable<Timestamp>,
        signatory_name -> Nullable<Text>,
        refused_to_sign -> Bool,
        submitted_by -> Nullable<Text>,
        submitted_at -> Nullable<Timestamp>,
        corrects_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    directives (id) {
        id -> Text,
        kind -> Text,
        doc_no -> Text,
        unit_id -> Text,
        equipment_id -> Nullable<Text>,
        hazard_id -> Nullable<Text>,
        inspection_id -> Nullable<Text>,
        region_code -> Text,
        state -> Text,
        content -> Text,
        article -> Nullable<Text>,
        amount_yuan -> Nullable<BigInt>,
        deadline -> Nullable<Timestamp>,
        until_on -> Nullable<Date>,
        issued_by -> Text,
        issued_at -> Timestamp,
        closed_by -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        close_note -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    campaigns (id) {
        id -> Text,
        region_code -> Text,
        title -> Text,
        description -> Text,
        starts_on -> Date,
        ends_on -> Date,
        phases -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    campaign_tasks (id) {
        id -> Text,
        campaign_id -> Text,
        title -> Text,
        lead_department -> Text,
        cooperating_departments -> Text,
        target -> Text,
        milestones -> Text,
        deadline -> Date,
        progress -> Integer,
        done_on -> Nullable<Date>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor_id -> Nullable<Text>,
        device_pk -> Nullable<Text>,
        action -> Text,
        entity_table -> Text,
        entity_id -> Text,
        region_code -> Nullable<Text>,
        before -> Nullable<Text>,
        after -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    sync_conflicts (id) {
        id -> Text,
        table_name -> Text,
        row_id -> Text,
        field -> Text,
        kept_value -> Text,
        lost_value -> Text,
        winner -> Text,
        user_id -> Text,
        device_pk -> Text,
        mutation_seq -> BigInt,
        base_version -> BigInt,
        version -> BigInt,
        region_code -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    assignments (id) {
        id -> Text,
        kind -> Text,
        unit_id -> Text,
        equipment_ids -> Text,
        region_code -> Text,
        team -> Text,
        window_start -> Timestamp,
        window_end -> Timestamp,
        campaign_id -> Nullable<Text>,
        notes -> Text,
        status -> Text,
        sealed -> Bool,
        reveal_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    assignment_members (assignment_id, user_id) {
        assignment_id -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    sync_tombstones (table_name, row_id, version) {
        table_name -> Text,
        row_id -> Text,
        version -> BigInt,
        region_code -> Nullable<Text>,
        unit_id -> Nullable<Text>,
        user_ids -> Nullable<Text>,
        deleted_at -> Timestamp,
    }
}

diesel::table! {
    sync_row_json (id, tbl) {
        tbl -> Text,
        id -> Text,
        version -> BigInt,
        json -> Text,
    }
}

diesel::table! {
    sync_scope_events (id) {
        id -> Text,
        version -> BigInt,
        kind -> Text,
        table_name -> Text,
        row_id -> Text,
        user_id -> Nullable<Text>,
        region_code -> Nullable<Text>,
        unit_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sync_mutations (device_pk, seq) {
        device_pk -> Text,
        seq -> BigInt,
        name -> Text,
        status -> Text,
        result -> Text,
        version -> BigInt,
        applied_at -> Timestamp,
    }
}

diesel::table! {
    uploads (id) {
        id -> Text,
        user_id -> Text,
        length -> BigInt,
        upload_offset -> BigInt,
        concat -> Text,
        parts -> Nullable<Text>,
        sha256 -> Nullable<Text>,
        filename -> Nullable<Text>,
        content_type -> Nullable<Text>,
        metadata -> Text,
        state -> Text,
        locked_until -> Nullable<Timestamp>,
        lock_token -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    blobs (sha256) {
        sha256 -> Text,
        size -> BigInt,
        format -> Text,
        width -> Integer,
        height -> Integer,
        taken_at -> Nullable<Timestamp>,
        gps_lat -> Nullable<Double>,
        gps_lon -> Nullable<Double>,
        orientation -> Integer,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    evidence (id) {
        id -> Text,
        hazard_id -> Text,
        unit_id -> Text,
        region_code -> Text,
        inspection_id -> Nullable<Text>,
        item_code -> Nullable<Text>,
        kind -> Text,
        sha256 -> Text,
        status -> Text,
        device_time -> Nullable<Timestamp>,
        gps_lat -> Nullable<Double>,
        gps_lon -> Nullable<Double>,
        taken_at -> Nullable<Timestamp>,
        exif_gps_lat -> Nullable<Double>,
        exif_gps_lon -> Nullable<Double>,
        orientation -> Nullable<Integer>,
        width -> Nullable<Integer>,
        height -> Nullable<Integer>,
        uploaded_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    surprise_plans (id) {
        id -> Text,
        title -> Text,
        region_code -> Text,
        campaign_id -> Nullable<Text>,
        window_start -> Timestamp,
        window_end -> Timestamp,
        target_count -> Integer,
        team_size -> Integer,
        min_key_share -> Nullable<Integer>,
        reveal_mode -> Text,
        criteria -> Text,
        status -> Text,
        seed -> Text,
        seed_commitment -> Text,
        algorithm -> Text,
        pool_hash -> Nullable<Text>,
        snapshot -> Nullable<Text>,
        result -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        drawn_by -> Nullable<Text>,
        drawn_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    surprise_plan_targets (plan_id, ordinal) {
        plan_id -> Text,
        ordinal -> Integer,
        assignment_id -> Text,
    }
}

diesel::table! {
    recusals (id) {
        id -> Text,
        user_id -> Text,
        unit_id -> Text,
        reason -> Text,
        note -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(user_credentials -> users (user_id));
diesel::joinable!(devices -> users (user_id));
diesel::joinable!(device_sessions -> devices (device_pk));
diesel::joinable!(device_sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> device_sessions (session_id));
diesel::joinable!(equipment -> units (unit_id));
diesel::joinable!(hazards -> units (unit_id));
diesel::joinable!(assignments -> units (unit_id));
diesel::joinable!(assignment_members -> assignments (assignment_id));
diesel::joinable!(evidence -> hazards (hazard_id));
diesel::joinable!(inspections -> assignments (assignment_id));
diesel::joinable!(campaign_tasks -> campaigns (campaign_id));
diesel::joinable!(uploads -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    sync_clock,
    uploads,
    blobs,
    evidence,
    server_meta,
    users,
    user_credentials,
    devices,
    device_sessions,
    refresh_tokens,
    login_throttle,
    codes,
    units,
    equipment,
    checklist_templates,
    hazards,
    assignments,
    assignment_members,
    sync_tombstones,
    sync_row_json,
    sync_scope_events,
    sync_mutations,
    sync_conflicts,
    inspections,
    directives,
    campaigns,
    campaign_tasks,
    audit_log,
    surprise_plans,
    surprise_plan_targets,
    recusals,
);
