import pymongo, sys
c = pymongo.MongoClient("127.0.0.1", 36003, serverSelectionTimeoutMS=3000, appname="sonde-test", retryWrites=False)
db = c.shop
db.orders.insert_one({"item": "tea", "qty": 2})
db.orders.insert_many([{"item": "cake", "qty": 1}, {"item": "jam", "qty": 5}])
print(list(db.orders.find({"item": "tea"})))
db.orders.update_one({"item": "jam"}, {"$set": {"qty": 6}})
db.orders.delete_one({"item": "cake"})
print(db.orders.count_documents({}))
try:
    db.command("nosuchcmd")
except Exception as e:
    print("err", e)
try:
    db.missing.drop(); db.command("drop", "missing")
except Exception as e:
    print("err", e)
c.close()
