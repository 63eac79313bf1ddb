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

diesel::joinable!(user_credentials -> users (user_id));
diesel::joinable!(devices -> users (user_id));
diesel::joinable!(device_sessions -> devices (device_pk));
diesel::joinable!(device_sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> device_sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    sync_clock,
    server_meta,
    users,
    user_credentials,
    devices,
    device_sessions,
    refresh_tokens,
    login_throttle,
);
