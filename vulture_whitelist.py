"""Names vulture cannot see being used: ORM, pydantic and dataclass fields read by frameworks,
pyHanko and cryptography interface methods, HTTP handler hooks, PDF dictionary keys in tests.
Regenerate the list with `vulture --make-whitelist` and read each line before keeping it."""

_.msg  # unused attribute (api/edge/observability.py:167)
authority_name  # unused variable (api/http/schemas_catalogue.py:21)
authority_name  # unused variable (api/http/schemas_catalogue.py:68)
updated_at  # unused variable (api/http/schemas_catalogue.py:81)
_.mtime  # unused attribute (api/ops/backup.py:92)
licence_type_name  # unused variable (api/pages/grant_views.py:43)
licence_type_name  # unused variable (api/pages/grant_views.py:64)
what_label  # unused variable (api/pages/grant_views.py:73)
channel_label  # unused variable (api/pages/grant_views.py:75)
method_label  # unused variable (api/pages/grant_views.py:77)
offered_mib  # unused variable (bench/bodies.py:128)
peer_public_key  # unused variable (keys/signing.py:77)
encoding  # unused variable (keys/signing.py:85)
encryption_algorithm  # unused variable (keys/signing.py:87)
memo  # unused variable (keys/signing.py:94)
encoding  # unused variable (keys/signing.py:126)
encryption_algorithm  # unused variable (keys/signing.py:128)
memo  # unused variable (keys/signing.py:135)
refreshed_at  # unused variable (licences/archive.py:55)
refresh_count  # unused variable (licences/archive.py:58)
expired_certificate_at  # unused variable (licences/archive.py:66)
new_certificate_expires_at  # unused variable (licences/archive.py:67)
_.refreshed_at  # unused attribute (licences/archive.py:226)
_.refresh_count  # unused attribute (licences/archive.py:227)
minted_by  # unused variable (licences/use_code_records.py:30)
_.updated_at  # unused attribute (licences/catalogue.py:47)
_.PDFZCompress  # unused attribute (licences/render.py:135): ReportLab reads it
_.updated_at  # unused attribute (licences/catalogue.py:95)
_.updated_at  # unused attribute (licences/catalogue.py:139)
superseded_at  # unused variable (licences/digests.py:21)
licence_type_name  # unused variable (licences/grant_desk.py:54)
created_by  # unused variable (licences/grants.py:66)
created_by  # unused variable (licences/holder_links.py:44)
authority_name  # unused variable (licences/models.py:91)
updated_at  # unused variable (licences/models.py:110)
_.useA85  # unused attribute (licences/render.py:325)
inherit_cache  # unused variable (licences/statistics.py:45)
_.system_time  # unused attribute (seals/apply.py:54)
_.async_request_tsa_response  # unused method (seals/ltv.py:54)
_.async_dummy_response  # unused method (seals/ltv.py:57)
OFFICIAL  # unused variable (seals/models.py:13)
_.async_sign_raw  # unused method (seals/signer.py:36)
_.image_ref  # pyHanko PdfImage property, overridden (seals/seal_xobject.py)
_._enforce_certification_constraints  # unused method (tests/corpus.py:149)
_.Contents  # unused attribute (tests/corpus.py:319)
_.Junk  # unused attribute (tests/corpus.py:326)
_.Deep  # unused attribute (tests/corpus.py:351)
_.OpenAction  # unused attribute (tests/corpus.py:366)
build_corpus  # unused function (tests/corpus.py:420)
_.should_exit  # unused attribute (tests/holder_login.py:88)
_.handle_starttag  # unused method (tests/holder_login.py:162)
_.do_GET  # unused method (tests/security/test_federation_http.py:311)
_.log_message  # unused method (tests/security/test_federation_http.py:319)
_.AcroForm  # unused attribute (tests/security/test_isolation.py:51)
frame  # unused variable (tests/security/test_isolation.py:119)
signum  # unused variable (tests/security/test_isolation.py:119)
cpu_limit  # unused variable (tests/security/test_isolation.py:176)
cpu_limit  # unused variable (tests/security/test_isolation.py:181)
cpu_limit  # unused variable (tests/security/test_isolation.py:197)
_.Deep  # unused attribute (tests/security/test_structure.py:77)
_.Deep  # unused attribute (tests/security/test_structure.py:89)
_.Held  # unused attribute (tests/security/test_structure.py:105)
_.Annots  # unused attribute (tests/security/test_structure.py:168)
_.Link  # unused attribute (tests/security/test_structure.py:177)
_.Deep  # unused attribute (tests/security/test_structure.py:183)
_.Launch  # unused attribute (tests/security/test_structure.py:187)
_.Held  # unused attribute (tests/security/test_structure.py:188)
_.AA  # unused attribute (tests/security/test_structure.py:198)
_.Info2  # unused attribute (tests/security/test_structure.py:205)
_.should_exit  # unused attribute (tests/test_browser.py:85)
_.do_GET  # unused method (tests/test_federation.py:125)
_.log_message  # unused method (tests/test_federation.py:132)
_.do_GET  # unused method (tests/test_federation_isolation.py:534)
_.log_message  # unused method (tests/test_federation_isolation.py:541)
licence_type_name  # unused variable (verify/holder_usage.py:48)
what_label  # unused variable (verify/holder_usage.py:56)
channel_label  # unused variable (verify/holder_usage.py:58)
method_label  # unused variable (verify/holder_usage.py:60)
supervision  # unused import (migrations/env.py:22): imported for its tables
full_label  # unused variable (api/pages/supervise_charts.py:26): read by _supervise_chart.html
value_x  # unused variable (api/pages/supervise_charts.py:27): read by _supervise_chart.html
value_y  # unused variable (api/pages/supervise_charts.py:28): read by _supervise_chart.html
label_y  # unused variable (api/pages/supervise_charts.py:39): read by _supervise_chart.html
office_name  # unused variable (supervision/supervisor_desk.py:37): read by supervise_base.html
protocol_version  # unused variable (tests/event_receiver.py:43)
_.do_POST  # unused method (tests/event_receiver.py:48)
_.daemon_threads  # unused attribute (tests/event_receiver.py:85)
raised_by  # unused variable (licences/objection_records.py:53): kept for the record, written once
answered_by  # unused variable (licences/objection_records.py:57): written by the answer's update
media_type  # unused variable (licences/models.py:241): the stored photo's type, for its readers
BOTH  # unused variable (licences/models.py): DocumentFormats "both", read from a type by value
_.recalcTimestamp  # unused attribute (licences/ofd_fonts.py): read by fontTools when it saves
_.create_system  # unused attribute (seals/ofd_zip.py): read by zipfile when it writes
_.external_attr  # unused attribute (seals/ofd_zip.py): read by zipfile when it writes
_.recalcBBoxes  # unused attribute (licences/ofd_fonts.py): read by fontTools when it saves
_.glyphOrder  # unused attribute (licences/ofd_fonts.py): read by fontTools' glyf table
